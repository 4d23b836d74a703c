"""What campaign and audience both read: the located YAML document and the rules for the
files a campaign may name."""
