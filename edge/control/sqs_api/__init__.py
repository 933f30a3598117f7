"""The Amazon SQS API (JSON protocol) over edgelab's local queues."""
