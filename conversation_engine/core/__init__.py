"""The contract and what every part shares: result models and rules (`contract`), errors,
how a conversation's end becomes a result (`outcome`), settings, and descriptive statistics."""
