import sys

from empanada_rs.cli import main

sys.exit(main())
