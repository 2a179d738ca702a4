"""Channel providers, one module each, behind the ChannelProvider port."""
