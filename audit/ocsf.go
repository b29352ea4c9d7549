package audit

// OCSFVersion is the OCSF schema version the events follow
// (metadata.version).
const OCSFVersion = "1.3.0"

// OCSF classes and categories used.
const (
	ClassAccountChange  = 3001
	ClassAuthentication = 3002
	ClassHTTPActivity   = 4002
	ClassAPIActivity    = 6003

	categoryIAM         = 3
	categoryNetwork     = 4
	categoryApplication = 6
)

// OCSF activity ids of the classes used.
const (
	activityOther = 99

	// Authentication.
	authLogon  = 1
	authLogoff = 2

	// Account Change.
	accountCreate  = 1
	accountDisable = 5

	// API Activity.
	apiCreate = 1
	apiRead   = 2
	apiUpdate = 3
	apiDelete = 4
)

// disposition ids (OCSF disposition_id).
const (
	dispositionAllowed = 1
	dispositionBlocked = 2
)

// mapping is how one event type maps onto OCSF.
type mapping struct {
	class    int
	activity int // 0: derived from the event (HTTP method, admin action)
	severity Severity
	outcome  Outcome // 0: derived (HTTP status)
}

// mappings is the documented table of docs/audit.md, "OCSF mapping".
var mappings = map[Type]mapping{
	TypeHTTPRequest: {ClassHTTPActivity, 0, SeverityInformational, 0},

	TypeLoginSuccess:      {ClassAuthentication, authLogon, SeverityInformational, OutcomeSuccess},
	TypeLoginFailure:      {ClassAuthentication, authLogon, SeverityMedium, OutcomeFailure},
	TypeLogout:            {ClassAuthentication, authLogoff, SeverityInformational, OutcomeSuccess},
	TypeBackChannelLogout: {ClassAuthentication, authLogoff, SeverityInformational, OutcomeSuccess},
	TypeRefreshFailure:    {ClassAuthentication, activityOther, SeverityLow, OutcomeFailure},
	TypeStepUpRequest:     {ClassAuthentication, activityOther, SeverityInformational, 0},
	TypeStepUpSuccess:     {ClassAuthentication, activityOther, SeverityInformational, OutcomeSuccess},
	TypeStepUpFailure:     {ClassAuthentication, activityOther, SeverityMedium, OutcomeFailure},
	TypeSessionRevoked:    {ClassAuthentication, authLogoff, SeverityLow, OutcomeSuccess},
	TypeHijackSuspected:   {ClassAuthentication, activityOther, SeverityHigh, OutcomeFailure},

	TypeAPIKeyCreated: {ClassAccountChange, accountCreate, SeverityInformational, OutcomeSuccess},
	TypeAPIKeyRotated: {ClassAccountChange, activityOther, SeverityInformational, OutcomeSuccess},
	TypeAPIKeyRevoked: {ClassAccountChange, accountDisable, SeverityLow, OutcomeSuccess},

	TypePolicyReloaded:   {ClassAPIActivity, apiUpdate, SeverityInformational, OutcomeSuccess},
	TypePolicyRejected:   {ClassAPIActivity, apiUpdate, SeverityMedium, OutcomeFailure},
	TypeConfigLoaded:     {ClassAPIActivity, apiRead, SeverityInformational, OutcomeSuccess},
	TypeAdminAction:      {ClassAPIActivity, 0, SeverityInformational, 0},
	TypeAlert:            {ClassAPIActivity, activityOther, SeverityHigh, 0},
	TypeRetentionDeleted: {ClassAPIActivity, apiDelete, SeverityInformational, OutcomeSuccess},
	TypeLoss:             {ClassAPIActivity, activityOther, SeverityHigh, OutcomeFailure},
}

// unknownMapping is used for a type not in mappings: recorded, never
// dropped, as an API Activity of activity Other.
var unknownMapping = mapping{ClassAPIActivity, activityOther, SeverityInformational, 0}

func categoryOf(class int) int {
	switch class {
	case ClassAccountChange, ClassAuthentication:
		return categoryIAM
	case ClassHTTPActivity:
		return categoryNetwork
	}
	return categoryApplication
}

// httpActivity is the HTTP Activity activity_id of a method.
func httpActivity(method string) int {
	switch method {
	case "CONNECT":
		return 1
	case "DELETE":
		return 2
	case "GET":
		return 3
	case "HEAD":
		return 4
	case "OPTIONS":
		return 5
	case "POST":
		return 6
	case "PUT":
		return 7
	case "TRACE":
		return 8
	case "PATCH":
		return 9
	}
	return activityOther
}

// adminActivity is the API Activity activity_id of an admin action.
func adminActivity(action string) int {
	switch action {
	case "create":
		return apiCreate
	case "read":
		return apiRead
	case "update":
		return apiUpdate
	case "delete":
		return apiDelete
	}
	return activityOther
}

// userTypeID is the OCSF user.type_id of a subject kind.
func userTypeID(kind string) int {
	switch kind {
	case "user":
		return 1 // User
	case "service":
		return 3 // System
	case "":
		return 0
	}
	return 99 // Other: api_key, anonymous
}
