"""Who a campaign reaches: chat ids, recipient files, suppression, masking."""
