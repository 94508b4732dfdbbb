"""Tools around the server: validate client events, record and replay sessions.

* :mod:`openrealtime.tools.validate`: check client events offline, with the
  hosted API's errors (``openrealtime validate``).
* :mod:`openrealtime.tools.record`: a relay that writes a transcript of every
  frame both ways (``openrealtime record``).
* :mod:`openrealtime.tools.replay`: send a transcript's client side to a
  server and report what came back differently (``openrealtime replay``).
* :mod:`openrealtime.tools.normalize` and :mod:`openrealtime.tools.diff`: what
  makes two transcripts comparable, and how they are compared.
"""
