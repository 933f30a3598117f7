"""Asynchronous invocation: the durable event queue, local queues, event-invoke configuration, the deliverer,
and event source mappings."""
