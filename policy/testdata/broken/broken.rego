package broken

decision := {"allow": true} if {
	input.route.id == "x"
