"""The contract between appliance and cloud: topics, messages, canonical JSON, the hash chain.

Pure code: nothing here opens a socket, a file or a database.
"""
