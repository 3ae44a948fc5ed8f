"""``python -m tongban`` is the ``tongban`` command."""

from tongban.cli import main

raise SystemExit(main())
