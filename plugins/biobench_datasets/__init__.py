"""biobench_datasets: built-in biobench plugin (work in progress)."""
