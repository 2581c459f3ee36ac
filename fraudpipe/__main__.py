import sys

from fraudpipe.cli import main

sys.exit(main())
