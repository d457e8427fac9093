from jarvisctl.cli import main

main()
