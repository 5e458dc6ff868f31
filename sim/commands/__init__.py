"""The commands of ``python -m sim``: each module here is one command.

A command module has ``NAME`` (the word typed after ``python -m sim``), ``add_parser(subparsers)``
(adds its sub-parser, with its options, help texts and defaults, and returns it) and
``run(args) -> int`` (does the work with the parsed arguments and returns the exit status).
``args`` holds the argument helpers they share. ``sim.cli`` lists the modules in the order of
``python -m sim --help``; adding a command is one module here and one line in that list.
"""
