"""The running stack: its configuration, ``edgelab serve``, the supervisor, the control and POP processes,
and the functions declared in the settings."""
