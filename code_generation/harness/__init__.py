"""The two halves of a sandboxed test run, and the wire between them.

A test run is two processes, each in a sandbox of its own (see :mod:`code_generation.sandbox`):

- the **module side** (:mod:`.module_side`) imports the generated module and nothing else of the user's tests,
  and answers requests about it: get an attribute, call a function, iterate a generator, ...;
- the **tests side** (:mod:`.tests_side`) runs the user's test file under pytest or unittest. ``import <module>``
  there gives a stand-in (:mod:`.proxy`) whose functions send their calls over the wire; the values that come
  back are rebuilt from plain data (:mod:`.wire`), so no object of the generated code ever exists in the
  process that evaluates the assertions and records the outcomes.

These files run inside the sandbox with the standard library (and pytest) only, imported as the package
``create_script_harness``; they import nothing else of this project.
"""
