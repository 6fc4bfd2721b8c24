"""Reading sheets into a Table and writing bulksync's cells back into them."""
