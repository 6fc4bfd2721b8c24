from bulksync.cli import run

run()
