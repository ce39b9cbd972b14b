"""What every listener shares about the network: which names and addresses are this machine's."""
