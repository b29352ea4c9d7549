package fixture_test

import data.fixture

test_open if fixture.decision.allow with input as {"route": {"id": "open"}}

# Wrong on purpose: the set must be refused.
test_closed_is_open if fixture.decision.allow with input as {"route": {"id": "closed"}}
