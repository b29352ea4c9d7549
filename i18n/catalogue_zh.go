package i18n

// zhHans is the Simplified Chinese catalogue.
var zhHans = map[string]string{
	"lang.name": "简体中文",
}
