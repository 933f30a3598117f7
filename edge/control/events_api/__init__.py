"""The EventBridge API subset for scheduled rules (JSON 1.1, ``AWSEvents``) and the scheduler that fires them."""
