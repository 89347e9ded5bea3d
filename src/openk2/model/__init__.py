"""The K2.6 architecture in PyTorch. Imports only torch and the standard library."""
