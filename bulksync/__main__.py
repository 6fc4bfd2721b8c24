from bulksync.cli import main

main()
