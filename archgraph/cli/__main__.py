"""``python -m archgraph.cli``: the ``archgraph`` command."""

from archgraph.cli import main

if __name__ == "__main__":
    main()
