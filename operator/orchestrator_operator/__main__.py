from orchestrator_operator.cli import main

main()
