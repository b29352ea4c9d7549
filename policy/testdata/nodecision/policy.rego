package fixture

allow if input.route.id == "open"
