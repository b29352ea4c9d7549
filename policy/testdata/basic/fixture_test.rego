package fixture_test

import data.fixture

test_ok if fixture.decision.allow with input as {"route": {"id": "ok"}}

test_deny if not fixture.decision.allow with input as {"route": {"id": "deny"}}
