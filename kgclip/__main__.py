import sys

from kgclip.cli.main import main

sys.exit(main())
