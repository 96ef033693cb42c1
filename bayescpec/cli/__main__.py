"""``python -m bayescpec.cli`` runs the command line, as the ``bayescpec`` script does."""

from . import main

main()
