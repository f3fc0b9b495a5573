"""A run, split into parts that each do one thing: `inputs` (config, data, suites' items), `workspace`
(its stores), `candidate` (train or reuse: the seam with `training`), `engines` (backend choice),
`evaluation` (the suites' RunView, evaluations and gates), `verdict` (pure), `results`, and `run`,
which assembles them."""
