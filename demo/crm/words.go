package crm

// Small built-in word lists the generator draws from. They are read-only
// lookup tables: nothing writes to them after package initialisation.

// demoUsers are the accounts of the demo identity provider, in the order
// their weights in ownerWeights are listed.
var demoUsers = [...]string{"alice", "bob", "carol", "dave"}

// ownerWeights makes alice and dave own most contacts, so a gateway policy
// that filters by owner visibly changes what a user sees.
var ownerWeights = [len(demoUsers)]int{45, 12, 8, 35}

var firstNames = [...]string{
	"James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael",
	"Linda", "David", "Elizabeth", "William", "Barbara", "Richard", "Susan",
	"Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen", "Priya",
	"Wei", "Fatima", "Mateo", "Aisha", "Lars", "Yuki", "Olga", "Kwame", "Ines",
}

var lastNames = [...]string{
	"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller",
	"Davis", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Wilson",
	"Anderson", "Taylor", "Moore", "Jackson", "Martin", "Lee", "O'Brien",
	"Nguyen", "Patel", "Kim", "Schmidt", "Rossi", "Dubois", "Kowalski",
	"Okafor", "Tanaka", "Larsen",
}

var companyStems = [...]string{
	"Northwind", "Globex", "Initech", "Umbrella", "Hooli", "Stark",
	"Wayne", "Vandelay", "Soylent", "Cyberdyne", "Tyrell", "Wonka",
	"Oceanic", "Monarch", "Massive Dynamic", "Blue Harbor", "Pied Piper",
	"Dunder Mifflin", "Sterling Cooper", "Prestige Worldwide",
}

var companySuffixes = [...]string{
	"Inc.", "LLC", "GmbH", "Ltd", "Group", "Holdings", "AG", "S.A.",
}

// notePhrases include characters (&, <, quotes) that legacy CRMs store
// verbatim, so escaping bugs downstream show up in the demo.
var notePhrases = [...]string{
	"Prefers email over phone.",
	"Called re: renewal, follow up next quarter.",
	"VIP - escalate support tickets to the account team.",
	"Asked about a GDPR data export.",
	"Budget approved for <Q3> expansion.",
	"Met at the Berlin trade fair.",
	"Do not call before 10am & after 6pm.",
	"Decision maker is the CFO.",
	"Complained about invoice \"INV-2021\" rounding.",
	"Interested in the premium support plan.",
	"Needs a signed NDA before the demo.",
	"Moved to a new office; update billing address.",
}

var dealProducts = [...]string{
	"CRM seats renewal", "Support plan upgrade", "Onboarding package",
	"Data migration", "Enterprise licence", "Training workshop",
	"API add-on", "Analytics module",
}

var dealStages = [...]string{"lead", "qualified", "proposal", "negotiation", "won", "lost"}

var currencies = [...]string{"USD", "EUR", "GBP"}

var invoiceStatuses = [...]string{"draft", "sent", "paid", "overdue"}
