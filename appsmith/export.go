package appsmith

import "encoding/json"

// The parts of an Appsmith export the importer reads. Fields are optional:
// exports of every schema version leave some out.

type export struct {
	ClientSchemaVersion  json.RawMessage `json:"clientSchemaVersion"`
	ServerSchemaVersion  json.RawMessage `json:"serverSchemaVersion"`
	ExportedApplication  *application    `json:"exportedApplication"`
	DatasourceList       []datasource    `json:"datasourceList"`
	PageList             []page          `json:"pageList"`
	ActionList           []action        `json:"actionList"`
	ActionCollectionList []collection    `json:"actionCollectionList"`
	CustomJSLibList      []customLib     `json:"customJSLibList"`
}

// customLib is a JS library an app installed from a URL.
type customLib struct {
	Name      string   `json:"name"`
	URL       string   `json:"url"`
	Accessor  []string `json:"accessor"`
	UIDString string   `json:"uidString"`
}

type application struct {
	Name string `json:"name"`
	Slug string `json:"slug"`
}

type datasource struct {
	Name                    string       `json:"name"`
	PluginID                string       `json:"pluginId"`
	DatasourceConfiguration *dsConfig    `json:"datasourceConfiguration"`
	DatasourceStorages      dsStorageMap `json:"datasourceStorages"`
}

// dsStorageMap is newer exports' per-environment configuration.
type dsStorageMap map[string]struct {
	DatasourceConfiguration *dsConfig `json:"datasourceConfiguration"`
}

type dsConfig struct {
	URL     string     `json:"url"`
	Headers []property `json:"headers"`
}

type page struct {
	UnpublishedPage *pageDTO `json:"unpublishedPage"`
	PublishedPage   *pageDTO `json:"publishedPage"`
}

type pageDTO struct {
	Name string `json:"name"`
}

type action struct {
	ID                string     `json:"id"`
	DeletedAt         string     `json:"deletedAt"`
	Deleted           bool       `json:"deleted"`
	PluginType        string     `json:"pluginType"`
	PluginID          string     `json:"pluginId"`
	UnpublishedAction *actionDTO `json:"unpublishedAction"`
	PublishedAction   *actionDTO `json:"publishedAction"`
}

type actionDTO struct {
	Name            string        `json:"name"`
	FullyQualified  string        `json:"fullyQualifiedName"`
	PageID          string        `json:"pageId"`
	CollectionID    string        `json:"collectionId"`
	PluginType      string        `json:"pluginType"`
	PluginID        string        `json:"pluginId"`
	Datasource      *datasource   `json:"datasource"`
	Config          *actionConfig `json:"actionConfiguration"`
	ExecuteOnLoad   *bool         `json:"executeOnLoad"`
	RunBehaviour    string        `json:"runBehaviour"`
	DynamicBindings []bindingPath `json:"dynamicBindingPathList"`
	JSONPathKeys    []string      `json:"jsonPathKeys"`
	DeletedAt       string        `json:"deletedAt"`
}

type bindingPath struct {
	Key string `json:"key"`
}

type actionConfig struct {
	HTTPMethod      string          `json:"httpMethod"`
	Path            string          `json:"path"`
	Headers         []property      `json:"headers"`
	QueryParameters []property      `json:"queryParameters"`
	Body            string          `json:"body"`
	BodyFormData    []property      `json:"bodyFormData"`
	FormData        map[string]any  `json:"formData"`
	EncodeParams    *bool           `json:"encodeParamsToggle"`
	Timeout         json.RawMessage `json:"timeoutInMillisecond"`
	PluginTemplates []property      `json:"pluginSpecifiedTemplates"`
	PaginationType  string          `json:"paginationType"`
	HTTPVersion     string          `json:"httpVersion"`
}

// property is Appsmith's {key, value} row (headers, query parameters,
// form fields); value may be a non-string in some exports.
type property struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
	Type  string `json:"type"`
}

type collection struct {
	ID                    string         `json:"id"`
	DeletedAt             string         `json:"deletedAt"`
	Deleted               bool           `json:"deleted"`
	UnpublishedCollection *collectionDTO `json:"unpublishedCollection"`
	PublishedCollection   *collectionDTO `json:"publishedCollection"`
}

type collectionDTO struct {
	Name      string     `json:"name"`
	PageID    string     `json:"pageId"`
	Body      string     `json:"body"`
	Variables []property `json:"variables"`
	DeletedAt string     `json:"deletedAt"`
}

// dto returns the unpublished (edit-mode) form, else the published.
func (a *action) dto() *actionDTO {
	if a.UnpublishedAction != nil && a.UnpublishedAction.Name != "" {
		return a.UnpublishedAction
	}
	return a.PublishedAction
}

func (c *collection) dto() *collectionDTO {
	if c.UnpublishedCollection != nil && c.UnpublishedCollection.Name != "" {
		return c.UnpublishedCollection
	}
	return c.PublishedCollection
}

// pluginType is the action's plugin type, wherever the export put it.
func (a *action) pluginType() string {
	if a.PluginType != "" {
		return a.PluginType
	}
	if d := a.dto(); d != nil {
		if d.PluginType != "" {
			return d.PluginType
		}
	}
	return ""
}

func (a *action) pluginID() string {
	if a.PluginID != "" {
		return a.PluginID
	}
	if d := a.dto(); d != nil {
		if d.PluginID != "" {
			return d.PluginID
		}
		if d.Datasource != nil {
			return d.Datasource.PluginID
		}
	}
	return ""
}

// onLoad reports whether the action runs on page load.
func (d *actionDTO) onLoad() bool {
	switch d.RunBehaviour {
	case "ON_PAGE_LOAD", "AUTOMATIC":
		return true
	case "":
		return d.ExecuteOnLoad != nil && *d.ExecuteOnLoad
	}
	return false
}
