"""The search objectives, one family per module.

- ``base``: the interface (``Objective``, ``PreparedBatch``, ``LossResult``),
  ``balanced_sum`` (the balanced λ of ``L_cls + λ L_aux``), ``accuracy`` and
  ``build_objective``;
- ``classification``: cross-entropy on clean or masked images (``cls``, ``cls-masked``);
- ``mim``: masked image modeling, i.e. the patch masker, the decoder's masked reconstruction
  loss and ``L_cls + λ L_rec`` (``rec``, ``mim``, ``mim-darts``);
- ``selfsupervised``: classification plus a generated-label task, rotation, colorization or
  jigsaw (``cls-rot``, ``cls-col``, ``cls-jig``).

Each name is registered by one literal line in ``mimdarts.search.catalog`` that names its
factory as ``"module:function"``: the registry imports no torch (``mimdarts objectives``
lists them without it) and a module is imported when its objective is first built.

Adding an objective to mimdarts takes one file and one line:

1. Write ``src/mimdarts/search/objectives/NAME.py`` holding a subclass of
   ``base.Objective`` (an ``nn.Module``: any head it owns is trained with the weights).
   Implement ``loss(model, batch) -> LossResult``, deterministic for a prepared batch
   (second order evaluates it at several weight points on the same batch); if it
   randomises a batch (masks, rotations...), also override
   ``prepare(images, labels, generator=None)`` and draw from ``generator or
   self.generator``. The entries of ``LossResult.terms`` are logged per epoch as
   ``train_<term>`` and ``val_<term>``.
2. In the same file, a factory ``make_NAME(cfg, model, info, seed, device) -> Objective``:
   ``cfg`` is the run's ``ObjectiveConfig``, ``model`` the supernet, ``info`` the
   dataset's ``DatasetInfo``; ``seed`` and ``device`` are the objective's.
3. Register it with one line in ``catalog.py``, beside the built-ins (``reads``: the
   objective settings the factory uses; a run that sets another one away from its default
   is refused, since it would do nothing):

    ```python
    add_objective("NAME", "one line for `mimdarts objectives`",
                  "mimdarts.search.objectives.NAME:make_NAME", reads=("aux_weight",))
    ```

4. If it has settings of its own, declare them as the fields of a frozen dataclass, each with
   ``mimdarts.config.setting(default, role, help)``, pass it as ``settings=`` to
   ``add_objective``, and read them in the factory with ``catalog.objective_settings(cfg)``;
   a run gives them as ``--objective-options NAME=VALUE,...`` (no field to add to the config).

``--objective NAME`` then works in searches, presets and sweeps. Code outside mimdarts
registers the same way, naming its own module (``add_objective`` with
``"its.module:make_x"``, or ``register_objective`` as a decorator on the factory), in the
process that runs the search: ``tests/test_search_objectives.py`` does so for a label-smoothed
cross-entropy and runs a search with it.
"""
