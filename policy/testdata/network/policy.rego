package fixture

decision := {"allow": http.send({"method": "GET", "url": "http://127.0.0.1/"}).status_code == 200}
