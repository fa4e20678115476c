"""biobench_synthfaces: built-in biobench plugin (work in progress)."""
