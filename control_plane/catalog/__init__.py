"""The tenant's catalog in the cloud: versioned items the registers sync while stores sell."""
