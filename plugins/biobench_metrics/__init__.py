"""biobench_metrics: built-in biobench plugin (work in progress)."""
