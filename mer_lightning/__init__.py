"""mer_lightning: train, test and compare facial micro-expression classifiers.

The package reads as layers; each imports only from the layers below it
(tests/test_layers.py holds it to that, docs/architecture.md tells more):

    tools      train, evaluate, ensemble, compare/, predict/, export, audit/, trials,
               bench/, hydra_callbacks, __main__      the commands a user runs
    runs/      config, validate, build, results, resume, failures, history,
               precision, reports, console               the machinery of one run
    recipes/   distill, sam, class_weights, refit, sampler  tricks that plug in by config
    core/      data/, models/, module, metrics, checkpoint,
               predictions, errors                        the pieces every run is made of
"""

__version__ = "0.1.0"
