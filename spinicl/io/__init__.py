"""Every file spinicl writes and reads (docs/model.md §4, §5).

Four HDF5 formats, each told by its root ``format`` attribute, each written and read by
one module here:

* :mod:`spinicl.io.run` — the **run** file (``spinicl-run``) of ``spinicl sample`` and
  ``spinicl resume``: layout, SWMR writer with alternating checkpoints, final status and
  summary, crash-safe reading, exclusive placement of new files, lock waits.
* :mod:`spinicl.io.sweep_file` — the **sweep** file (``spinicl-sweep``) of ``spinicl
  sweep`` and its **journal** (``OUT.points/<id>.h5``, one finished point per file):
  the single writer, the coordinator lock, and the one reader of sweep results used by
  the plots and the loaders.
* :mod:`spinicl.io.training_file` — the **training** file (``spinicl-training``) of
  ``spinicl train``, read back by ``spinicl compare``.
* :mod:`spinicl.io.loaders` — run and sweep files into pandas / xarray / ArviZ, CSV and
  netCDF export, the ``spinicl info`` report of a sweep.

Shared by the readers: :mod:`spinicl.io.hdf5` (read-only opening with lock waits and
damaged files as one-line errors, attribute and string decoding).

Nothing is imported here: ``import spinicl.io.run`` loads only what a run needs.
"""
