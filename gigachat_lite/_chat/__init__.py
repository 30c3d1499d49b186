"""What a chat call sends and how its replies read, for both contracts (v1 and v2); no I/O."""
