"""名寄せ (M6): new-customer registration with the duplicate check, the duplicate list and
merging two customers; above the features whose rows a merge moves."""
