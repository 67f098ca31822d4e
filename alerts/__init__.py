"""The alerting scheduler and evaluators that call core rules, and notifications."""
