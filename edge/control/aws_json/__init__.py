"""The ``POST /`` dispatcher of the control port: AWS JSON-protocol services chosen by ``X-Amz-Target``."""
