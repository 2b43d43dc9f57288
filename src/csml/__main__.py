from csml.cli import main

main()
