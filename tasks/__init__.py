"""Benchmark plugins. Each module defines one `evalkit.task.Task` subclass registered in
`evalkit.registry.TASKS`; shipped samples live in tasks/samples/<name>/ and the scripts that
made them in tasks/samplegen/."""
