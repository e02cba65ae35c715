DROP TABLE workspace_events;
DROP TABLE workspace_investigations;
DROP TABLE workspace_members;
DROP TABLE workspaces;
