package i18n

// en is the English catalogue, complete: every message id is here.
var en = map[string]string{
	"lang.name": "English",
}
