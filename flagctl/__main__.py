from flagctl.cli.main import main

raise SystemExit(main())
