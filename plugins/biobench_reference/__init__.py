"""biobench_reference: built-in biobench plugin (work in progress)."""
