"""Edge chaos: scenario files of faults by path pattern, POP and time window (``scenario``), applied live by a POP
(``engine``). See the README's "Edge chaos and realistic cold starts"."""
