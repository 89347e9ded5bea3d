VALUES = {"timeout": "45"}
