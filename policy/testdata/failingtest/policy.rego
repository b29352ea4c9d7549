package fixture

decision := {"allow": input.route.id == "open"}
