"""``python -m biobench`` (used by ``torchrun -m biobench``)."""

from biobench.cli import main

if __name__ == "__main__":
    main()
